# One image for every step of the lab; LAB_STEP (e.g. 02_actor_reminders) picks the step at run time.
# PYTHON_VERSION matches [tool.dapr-lab] python in pyproject.toml (a test checks; Tilt passes it).
ARG PYTHON_VERSION=3.11.7
FROM python:${PYTHON_VERSION}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Dependencies first and only from the hash-locked file, so editing a step never reinstalls them.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes --no-deps -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock

# A numeric non-root user, so Kubernetes can check runAsNonRoot.
RUN groupadd --gid 10001 lab \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin lab
COPY kubernetes/serve.sh /usr/local/bin/lab-serve

WORKDIR /app
# .dockerignore lets only the step folders and lab_plumbing through; the app user owns them so
# Tilt can sync edits.
COPY --chown=10001:10001 . /app
# uvicorn imports a step from its folder (--app-dir); every step imports /app/lab_plumbing.
ENV PYTHONPATH=/app
USER 10001:10001
ENV LAB_STEP=""
EXPOSE 8000
CMD ["sh", "/usr/local/bin/lab-serve"]
