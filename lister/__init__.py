"""The job lister: views of pending, running and inactive jobs built from the journal."""
