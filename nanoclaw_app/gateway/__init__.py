"""The model gateway: a host-side reverse proxy that holds the API keys, so containers never see them."""
