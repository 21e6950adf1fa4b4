# The grader's own image, for docker-compose.yml's web app and grading workers. Built locally (the classic builder,
# never --pull) FROM the base image `grader images build` makes with mmdebstrap: there is no registry here.
FROM grader-base:bookworm
LABEL grader.kind=app
USER 0
# The host's CA bundle (`make setup` copies it into .build/): where TLS is intercepted, pip trusts only that.
COPY .build/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1
# git clones submissions; Pango and a font let WeasyPrint write report.pdf.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
# Exactly the locked versions (requirements.lock, from `uv pip compile`), then the grader itself without resolving again.
COPY requirements.lock /opt/grader/requirements.lock
RUN python3 -m venv /opt/grader/venv \
 && /opt/grader/venv/bin/pip install --no-cache-dir --require-hashes -r /opt/grader/requirements.lock
COPY pyproject.toml README.md /opt/grader/src/
COPY grader /opt/grader/src/grader
COPY harness /opt/grader/src/harness
COPY assignments /opt/grader/src/assignments
RUN /opt/grader/venv/bin/pip install --no-cache-dir --no-deps /opt/grader/src
ENV PATH=/opt/grader/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    GRADER_ASSIGNMENTS_DIR=/opt/grader/src/assignments
WORKDIR /opt/grader
