# A stand-in for the official postgres image, built from Debian's packages, for machines that reach Debian's
# mirror but no container registry (deploy/smoke.sh builds it when `docker pull postgres:16` fails). It honours the
# same POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB variables and data folder.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
RUN mkdir -p "$PGDATA" /var/run/postgresql && chown -R postgres:postgres "$PGDATA" /var/run/postgresql
USER postgres
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
