"""``addHSMProfile``: the published admin guide's name for ``createHSMProfile``, same behaviour."""
from .create_hsm_profile import CreateHSMProfile


class AddHSMProfile(CreateHSMProfile):
    api_name = "addHSMProfile"
    description = "Adds an HSM profile (the admin guide's name for createHSMProfile)"
    related = "createHSMProfile,listHSMProfiles"
