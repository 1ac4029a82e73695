"""Networks and their registered serializable layers."""
