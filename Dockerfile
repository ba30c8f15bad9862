# tft_lite with Apache Beam: one image for the job service, the SDK worker pool and the
# pipeline submitter of docker-compose.yml.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY setup.py README.md LICENSE ./
COPY tft_lite ./tft_lite
RUN pip install --no-cache-dir '.[beam]'
COPY pipelines ./pipelines
COPY data ./data
