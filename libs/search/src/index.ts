// The HM3 search loop: rounds, candidates, archive. The public API of @hm3/search; empty until its issue lands.
export {};
