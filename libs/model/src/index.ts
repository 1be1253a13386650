// HF config to architecture, ONNX graph builder, inference-path runtime, tokenizers. The public API of @hm3/model; empty until its issue lands.
export {};
