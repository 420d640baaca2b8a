# The api app owns no models.
