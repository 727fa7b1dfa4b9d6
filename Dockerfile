# The hub image: compiles the Cython engine at build time, runs `hub serve`.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends g++ libssl-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir . && useradd --system hub && mkdir -p /var/lib/hub && chown hub /var/lib/hub
USER hub
EXPOSE 50051
ENTRYPOINT ["hub"]
# Refuses to start with the public development tokens: mount your config (--config) or see docker-compose.yml.
CMD ["serve", "--host", "0.0.0.0", "--port", "50051", "--data-dir", "/var/lib/hub", "--config", "/etc/hub/hub.toml"]
