"""kafka-python specifics: the fast record-batch reader, the block sender, checked sends, topics, probes."""
