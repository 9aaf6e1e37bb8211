"""Online learning from feedback: decision log, durable feedback queue, consumer, live policy, cost control."""
