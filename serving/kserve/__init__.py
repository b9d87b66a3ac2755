"""KServe v2 / Open Inference Protocol front ends: REST (`rest.py`, on the aiohttp app) and gRPC
(`grpc_server.py`, `inference.GRPCInferenceService` with Triton's `ModelStreamInfer`, plus
`grpc.health.v1`), both over the same graphs as the OpenAI routes (`inference.py`).

Server metadata: name "ovserve", the package version, extensions `binary_tensor_data` (REST) and
`parameters`. Each servable is a model with one version, "1" (an empty version means it too);
platform "ovserve_graph".

Text generation (graphs that take `HTTP_REQUEST_PAYLOAD`):
  input  `text_input`  BYTES, one element: a plain prompt (sent as one user message through the
         chat template), or an OpenAI request body as JSON: an object with `messages` is a chat
         request, one with `prompt` a completion (raw text, no template).
  output `text_output` BYTES [n]: the generated text (the message content) of each choice.
  request parameters: OpenAI request fields on top of the body, e.g. `max_tokens` (int64),
         `temperature`, `top_p` (double), `top_k`, `seed` (int64), `stop` (string),
         `ignore_eos` (bool); unknown names are a 400 / INVALID_ARGUMENT, as on /v3.
         Protocol and tritonclient parameters are ignored: `sequence_id`, `sequence_start`,
         `sequence_end`, `priority`, `timeout`, `binary_data_output`, `headers`, `triton_*`.
  response parameters: `finish_reason` (string), `prompt_tokens`, `completion_tokens` (int64).
  ModelStreamInfer: one response per piece of text as it comes (`text_output` [1], parameter
         `triton_final_response` false), then a final response (`triton_final_response` true,
         `finish_reason`): without outputs when the request sets
         `triton_enable_empty_final_response` (tritonclient's `enable_empty_final_response=True`),
         else with an empty `text_output`, so concatenating every `text_output` gives the text.
         Streaming needs n = 1. Requests on one stream run concurrently; responses carry the
         request's `id`.

Embeddings (graphs with `EmbeddingsCalculatorOV`), ModelInfer only:
  input  `text_input`  BYTES [N] (any shape with N elements): the texts.
  output `embeddings`  FP32 [N, D]. Request parameters are embeddings request fields (e.g.
         `dimensions`); response parameter `prompt_tokens`.

Rerank graphs are not served over KServe (INVALID_ARGUMENT / 400 naming /v3/rerank's API).

Errors: REST answers `{"error": "..."}` with 400 (bad input), 401 (API key, from the auth
middleware, in OpenAI's shape), 404 (unknown model or version), 413, 503 (loading, draining; also
a model that is not ready); gRPC uses INVALID_ARGUMENT, UNAUTHENTICATED, NOT_FOUND,
RESOURCE_EXHAUSTED, UNAVAILABLE, INTERNAL.
"""
