# the jobping project with its locked dependencies, for the compose worker and deploy services
FROM python:3.11-slim
WORKDIR /opt/jobping
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY jobping ./jobping
COPY flows ./flows
COPY tasks ./tasks
COPY storage ./storage
COPY prefect.yaml ./
RUN pip install --no-cache-dir --no-deps -e .
ENV PREFECT_SERVER_ANALYTICS_ENABLED=false \
    JOBPING_DATA_DIR=/data
VOLUME ["/data"]
