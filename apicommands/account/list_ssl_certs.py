"""``listSslCerts``: the SSL certificates of an account (the UI's *Certificates* tab of an account).

Certificates cannot be uploaded to this server (there is no ``uploadSslCert``), so an account
never has any and the list is empty; the account must still be one the caller may see. Of
upstream's filters only ``accountid`` applies here (no certificate, load-balancer rule or
project exists to name), and, as upstream, one is required.
"""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_account_visible
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, ListResult
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.errors import InvalidParameterValue
from cloudstack_kms.models import Account


class SslCertResponse(ResponseObject):
    object_name = "sslcert"
    id = Out.uuid("SSL certificate ID")
    name = Out.string("name")
    certificate = Out.string("certificate")
    certchain = Out.string("certificate chain")
    fingerprint = Out.string("certificate fingerprint")
    account = Out.string("account for the certificate")
    domainid = Out.uuid("the domain id of the network owner")
    domain = Out.string("the domain name of the network owner")
    loadbalancerrulelist = Out.list("List of load balancers this certificate is bound to")


class ListSslCerts(Command):
    api_name = "listSslCerts"
    description = "Lists SSL certificates"
    roles = ALL_ROLES
    read_only = True
    response = SslCertResponse
    java_class = "org.apache.cloudstack.api.command.user.loadbalancer.ListSslCertsCmd"

    class Params(BaseParams):
        accountid = p.uuid("Account ID", entity=Account, related="listAccounts")

    def execute(self) -> ListResult:
        account: Account | None = self.arg("accountid")
        if account is None:
            raise InvalidParameterValue("Invalid parameters: the Account ID is required")
        check_account_visible(self.ctx, account)
        return ListResult(SslCertResponse, [], 0)
