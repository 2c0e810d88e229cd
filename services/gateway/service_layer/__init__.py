"""The gateway's use case: take a Segment call, validate it, hash its
identifiers, build `interaction recorded` events and have JetStream store them."""
