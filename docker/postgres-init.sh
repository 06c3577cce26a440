#!/bin/sh
# First start of the PostgreSQL volume: a second database for the Prefect server.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE DATABASE \"${PREFECT_DB:-prefect}\" OWNER \"$POSTGRES_USER\";"
