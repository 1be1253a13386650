// Installs and starts the real Kafka broker and the MongoDB-compatible server (FerretDB). The public API of @hm3/infra; empty until its issue lands.
export {};
