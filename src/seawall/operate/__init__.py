"""What operators do: resume, replay, the dead-letter queue, takeover of stranded runs."""
