// EventBus port with Kafka and in-process adapters. The public API of @hm3/events; empty until its issue lands.
export {};
