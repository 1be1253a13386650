// PolicyService. The public API of @hm3/rl-policy; empty until its issue lands.
export {};
