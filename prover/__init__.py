"""ezkl compilation and proving of model segments, and the queue worker for prover fleets."""
