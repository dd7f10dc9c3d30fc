from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from common import favicon, health
from dialogs.chat_views import chat_page
from dialogs.views import voice_media
from tts.urls import media_urlpatterns, openai_urlpatterns

# 查看站点 leads to the console (staff are who read the admin); `/` itself redirects there too.
admin.site.site_url = "/console/"
admin.site.site_header = _("Customer-service voice platform")
admin.site.site_title = _("Customer-service voice platform")

urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False), name="home"),
    path("favicon.ico", favicon.favicon_ico, name="favicon"),
    path("favicon.svg", favicon.favicon_svg, name="favicon-svg"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("console/", include("dialogs.console_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include("accounts.urls")),
    path("api/", include("tts.urls")),
    path("api/", include("dialogs.api_urls")),
    path("chat/", chat_page, name="chat"),
    path("media/", include(media_urlpatterns)),
    path("media/voice/<str:token>", voice_media, name="dialogs-voice"),
    path("v1/", include(openai_urlpatterns)),
]

handler400 = "common.error_views.bad_request"
handler403 = "common.error_views.permission_denied"
handler404 = "common.error_views.not_found"
handler500 = "common.error_views.server_error"
