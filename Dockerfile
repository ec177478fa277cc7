# the jobping project with its locked dependencies, for the compose worker and deploy services
FROM python:3.11-slim
WORKDIR /opt/jobping
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY jobping ./jobping
COPY flows ./flows
COPY tasks ./tasks
COPY storage ./storage
COPY app ./app
COPY prefect.yaml ./
RUN pip install --no-cache-dir --no-deps -e .
# the flows run as an unprivileged user that owns only the data volume
RUN useradd --create-home --uid 10001 jobping && mkdir -p /data && chown jobping:jobping /data
USER jobping
ENV PREFECT_SERVER_ANALYTICS_ENABLED=false \
    JOBPING_DATA_DIR=/data
VOLUME ["/data"]
