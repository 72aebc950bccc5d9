"""The provincial monitoring center: verification, anomalies, storage, bus, worker, app and CLI."""
