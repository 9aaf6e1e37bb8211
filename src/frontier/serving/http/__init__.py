"""The router's HTTP layer: ``app.build_app`` builds one replica's FastAPI app from its dependencies."""
