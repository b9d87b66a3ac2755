"""Generated protobuf modules for graph configs; see README.md here for how to regenerate them."""
