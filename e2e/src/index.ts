// Whole-system tests. The public API of @hm3/e2e; empty until its issue lands.
export {};
