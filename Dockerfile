FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY services ./services
COPY infra ./infra
RUN pip install --no-cache-dir . \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin dphp
# The services run unprivileged (compose.secure.yml's one-shot `secrets` service alone runs as root).
USER 10001
ENV PYTHONUNBUFFERED=1
CMD ["dphp", "--help"]
