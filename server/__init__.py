"""rivertrace's edge: command line, gRPC services, storage, alert delivery (the only place that
knows about wire formats)."""
