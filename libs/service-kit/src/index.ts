// gRPC server and client bootstrap: config, health, reflection, auth, TLS, logs, metrics, shutdown. The public API of @hm3/service-kit; empty until its issue lands.
export {};
