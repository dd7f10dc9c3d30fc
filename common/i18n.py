"""Language choice: Simplified Chinese unless the user picked another language.

Django's LocaleMiddleware follows the browser's Accept-Language, so an agent whose browser
happens to be English would get an English console. The product defaults to zh-hans for
everyone; English stays available through the language cookie (POST /i18n/setlang/).
"""

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


class DefaultLanguageLocaleMiddleware(LocaleMiddleware):
    def process_request(self, request):
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        supported = {code for code, _name in settings.LANGUAGES}
        language = chosen if chosen in supported else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
