"""What comes from the network (rules/downloads.smk, pretrained.smk): resumable, checked
downloads and archive extraction, and the public pretrained weights converted to NumPy."""
