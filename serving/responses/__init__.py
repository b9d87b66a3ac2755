"""The OpenAI Responses API (`/v3/responses`) as a front end over the chat graph: a Responses
request becomes a chat body (`request`), the chat answer becomes a Response object (`output`) or
the Responses event stream (`events`), and stored responses continue by id (`store`)."""
