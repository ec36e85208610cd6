"""``listGuiThemes``: the login page asks for the theme of its host name before anyone logs in.

This server keeps no GUI themes, so the answer is an empty list (the UI then uses its built-in
look), to anyone. The filters are declared because the UI sends them; on no themes they match none.
"""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, ListCommand, ListResult, _ListParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.api.listing import page_window


class GuiThemeResponse(ResponseObject):
    object_name = "guiThemes"
    id = Out.uuid("ID of the custom GUI theme")
    name = Out.string("name of the GUI theme")
    description = Out.string("description of the GUI theme")
    css = Out.string("the CSS of the GUI theme")
    jsonconfiguration = Out.string("the JSON configuration of the GUI theme")
    commonnames = Out.string("the common names (host names) the theme applies to")
    ispublic = Out.boolean("whether the theme is public")


class ListGuiThemes(ListCommand):
    api_name = "listGuiThemes"
    description = "Lists GUI themes. This server keeps none: the UI uses its default look."
    since = "4.21.0"
    roles = ALL_ROLES
    requires_auth = False
    read_only = True
    response = GuiThemeResponse
    java_class = "org.apache.cloudstack.api.command.user.gui.theme.ListGuiThemesCmd"

    class Params(_ListParams):
        id = p.uuid("the ID of the theme")
        name = p.string("the name of the theme")
        commonname = p.string("the common name (host name) the theme applies to")
        listonlydefaulttheme = p.boolean("whether to list only the default theme")

    def execute(self) -> ListResult:
        page_window(self.args)
        return ListResult(GuiThemeResponse, [], 0)
