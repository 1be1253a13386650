// Generated wire types and gRPC service definitions (buf generate + ts-proto); never edited by hand. The public API of @hm3/proto; empty until its issue lands.
export {};
