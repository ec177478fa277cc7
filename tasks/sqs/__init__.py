"""Everything that knows about SQS: the embedded emulator, queues, publishing, consuming."""
