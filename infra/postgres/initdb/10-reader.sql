-- docker-compose.yml (the development shape) only: the reader role the web service logs in as,
-- with the same fixed development password scheme as the `dphp` user. The migrations grant it the
-- recap and meeting views. compose.secure.yml does not mount this: there the role's password is random.
CREATE ROLE dphp_reader LOGIN PASSWORD 'dphp_reader';
