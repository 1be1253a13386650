// Repository ports and ArtifactStore with MongoDB, in-memory and local-folder adapters. The public API of @hm3/store; empty until its issue lands.
export {};
