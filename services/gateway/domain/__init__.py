"""The gateway's domain: Segment messages, the PII rule and the translation of
a Segment call into an ``InteractionRecorded`` event. No I/O."""
