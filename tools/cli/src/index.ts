// The hm3 command. The public API of @hm3/cli; empty until its issue lands.
export {};
