FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY services ./services
COPY infra ./infra
RUN pip install --no-cache-dir .
ENV PYTHONUNBUFFERED=1
CMD ["dphp", "--help"]
