FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY nphies_facade ./nphies_facade
RUN pip install --no-cache-dir . && useradd --system --home /app facade && mkdir -p /data && chown facade /data
USER facade
ENV NPHIES_FACADE_DATA_DIR=/data NPHIES_FACADE_HOST=0.0.0.0 NPHIES_FACADE_PORT=8080
EXPOSE 8080
VOLUME ["/data"]
CMD ["nphies-facade", "serve"]
