// Architecture-level MDP, networks, PPO, policy export. The public API of @hm3/rl; empty until its issue lands.
export {};
