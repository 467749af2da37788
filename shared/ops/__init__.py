"""What operators and orchestrators run against a service: probes."""
