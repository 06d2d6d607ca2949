#!/bin/sh
# Runs once, on an empty data directory (/docker-entrypoint-initdb.d): creates the service's
# role and database. The role owns its database and nothing else: no superuser, no CREATEDB,
# no CREATEROLE, and no other role (but the superuser) may connect to it.
set -eu
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    --set app_user="$APP_USER" --set app_password="$APP_PASSWORD" --set app_db="$APP_DB" <<'SQL'
CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
CREATE DATABASE :"app_db" OWNER :"app_user";
REVOKE ALL ON DATABASE :"app_db" FROM PUBLIC;
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;
SQL
