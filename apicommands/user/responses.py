"""The ``userkeys`` response object."""
from cloudstack_kms.api.declare import Out, ResponseObject


class UserKeysResponse(ResponseObject):
    object_name = "userkeys"
    apikey = Out.string("the api key of the registered user")
    secretkey = Out.string("the secret key of the registered user")
