"""The aiohttp application factory, used by the CLI and by tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from calculators.media import MediaLoader, MediaPolicy
from calculators.media.access import MediaAccess
from serving import (
    admission,
    audio_routes,
    cohere,
    console_data,
    console_routes,
    cors,
    health,
    image_routes,
    llamacpp,
    loop_lag,
    metrics,
    middleware,
    openai_routes,
    openapi,
    reload,
    trace_routes,
)
from serving.anthropic_routes import add_routes as add_anthropic_routes
from serving.frontend import CORE, FrontEndCore
from serving.kserve import rest as kserve_rest
from serving.ollama_routes import add_routes as add_ollama_routes
from serving.responses_routes import add_routes as add_responses_routes
from serving.servable import ServableManager
from serving.settings import Settings
from serving.speech_routes import add_routes as add_speech_routes
from serving.state import SERVABLES, SETTINGS


def create_app(settings: Settings, servables: ServableManager) -> web.Application:
    """The REST application. Servables load in the background once it starts, so liveness
    answers at once and readiness turns true when every servable has loaded. Its front-end core
    (app[CORE]) is what the gRPC server serves with too."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[SERVABLES] = servables
    gate = admission.install(app, settings.max_concurrent_requests, settings.max_queued_requests, settings.request_timeout)

    async def servables_ctx(app: web.Application) -> AsyncIterator[None]:
        loading = asyncio.get_running_loop().create_task(servables.load_all(), name="load-servables")
        yield
        loading.cancel()
        await asyncio.gather(loading, return_exceptions=True)
        await servables.aclose()

    app.cleanup_ctx.append(servables_ctx)
    # One image loader per server (its HTTP session enforces the address rules), for every run.
    media = MediaAccess(MediaLoader(settings.media or MediaPolicy()), settings.max_images_per_request)

    async def media_ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        await media.loader.aclose()

    app.cleanup_ctx.append(media_ctx)
    openai_routes.add_routes(app)
    health.add_routes(app)
    kserve_rest.add_routes(app)  # KServe v2: /v2, /v2/models/...
    add_responses_routes(app)  # OpenAI Responses: /v3/responses, /v1/responses
    add_anthropic_routes(app)  # Anthropic Messages: /v1/messages, /v1/messages/count_tokens
    audio_routes.add_routes(app)  # OpenAI audio: /v3/audio/transcriptions, /v3/audio/translations (and /v1)
    add_speech_routes(app)  # OpenAI text to speech: /v3/audio/speech (and /v1)
    cohere.add_routes(app)  # Cohere rerank: /v1/rerank, /v2/rerank (and under /v3)
    llamacpp.add_routes(app)  # llama-server's /health, /props, /tokenize, /detokenize
    image_routes.add_routes(app)  # OpenAI images: /v3/images/generations, /v3/images/edits (and /v1)
    console_routes.install(app, settings)  # the web console: /console/, and / for browsers (before Ollama's /)
    add_ollama_routes(app)  # Ollama: /api/chat, /api/generate, /api/embed, /api/tags, ..., / (also on --ollama_port)
    console_data.add_routes(app)  # GET /console/api/graphs/{servable}: the console's Graph view
    openapi.install(app)  # GET /openapi.json
    loop_lag.install(app)
    traces = trace_routes.install(app, settings)  # GET /debug/traces; with --trace, the trace store
    reload.install(app, settings, servables)
    recorded = metrics.install(app)  # GET /metrics when metrics are on
    cors.install(app, cors.CorsPolicy.from_settings(settings))
    core = app[CORE] = FrontEndCore(settings, servables, gate, recorded, traces, media)
    app.middlewares.extend(middleware.chain(settings, core))
    return app
