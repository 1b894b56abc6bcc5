"""The command-line entry points behind consumer.py and producer.py."""
