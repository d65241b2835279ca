"""EMR sharing: the index and consent contracts' clients, the put/get/request/grant/erase flows, audit, the demo."""
