# syntax=docker/dockerfile:1.7
# The image every cinesense service builds on, and the inference API's as it is: Python
# 3.11, a slim Java runtime for KoNLPy, the torch-free requirements (requirements-serve.txt) and
# the package. The UI, object store, MLflow and nginx images add their server; the Airflow
# image adds CPU torch, the training stack, Korean fonts, Chromium and Airflow.
#
#   docker build -f base.Dockerfile -t cinesense/base:0.1.0 .
#
# PYTHON_IMAGE is the official image by tag; pin it by digest as well
# (python:3.11.14-slim-bookworm@sha256:…) where builds must be bit-for-bit repeatable.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# KoNLPy's Okt runs on a JVM. jlink cuts a Java runtime down to the modules Okt and JPype
# use (jdeps on KoNLPy's jars, plus jdk.zipfs for JPype's jar file system): about 50 MB
# instead of the 180 MB of Debian's headless JRE (binutils: jlink strips with objcopy).
FROM ${PYTHON_IMAGE} AS jre
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jdk-headless binutils \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && jlink --add-modules java.base,java.desktop,java.logging,java.management,java.xml,jdk.zipfs \
        --strip-debug --no-man-pages --no-header-files --compress=2 --output /opt/jre

FROM ${PYTHON_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    CINESENSE_HOME=/data \
    MPLCONFIGDIR=/tmp/matplotlib \
    JAVA_HOME=/opt/jre

# Debian packages follow the bookworm release of the pinned base image (DL3008 is off in
# .hadolint.yaml): tini as PID 1 so signals reach the server `cinesense stack run`
# exec()s. (Korean fonts for figures: Airflow image.)
COPY --from=jre /opt/jre /opt/jre
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/cinesense cinesense \
 && install -d -o cinesense -g cinesense /data

WORKDIR /opt/cinesense

# Requirements first, so a code change does not reinstall them: requirements-serve.txt, the
# torch-free subset of requirements.txt's pins (transitive versions held to requirements.txt
# by -c). The pip cache mount keeps rebuilds fast. Never used in the image, so removed: the
# test suites of pandas, pyarrow and numpy (70 MB), pyarrow's Arrow Flight RPC and C++
# headers (48 MB). No bytecode is compiled here (130 MB for every module); the last step
# compiles what the services import.
COPY requirements.txt requirements-serve.txt requirements-docker.txt requirements-airflow.txt ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m venv /opt/venv \
 && pip install --no-compile -c requirements.txt -r requirements-serve.txt \
 && site=$(echo /opt/venv/lib/python3*/site-packages) \
 && rm -rf "$site"/pandas/tests "$site"/pyarrow/tests "$site"/numpy/*/tests \
           "$site"/pyarrow/include "$site"/pyarrow/libarrow_flight.* \
           "$site"/pyarrow/libarrow_python_flight.* "$site"/pyarrow/_flight.*

# Installed in place (editable), as in a checkout: `cinesense stack run` finds the DAGs, the
# Streamlit app and the shipped default model beside the package, exactly as `make up` does.
COPY pyproject.toml README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps -e .

# The thin per-service entry points stay at the paths they have in the repository.
COPY fastapi ./fastapi
COPY streamlit ./streamlit
COPY nginx ./nginx
COPY airflow/dags ./airflow/dags

# Bytecode for what `cinesense stack run` and the API import at start (31 MB instead of
# 130), so a container does not recompile them at every start (about 3 s more per start;
# PYTHONDONTWRITEBYTECODE keeps the image read-only at run time).
RUN env -u PYTHONDONTWRITEBYTECODE python -c "import cinesense.cli, cinesense.serving.app, \
cinesense.registry, cinesense.storage, mlflow.pyfunc, pandas, pyarrow.parquet, boto3, konlpy, \
onnxruntime, tokenizers, uvicorn, httpx"

USER 10001
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["cinesense", "--help"]
