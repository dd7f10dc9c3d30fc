import factory
from factory.django import DjangoModelFactory

from accounts.models import CustomerProfile, Role, User


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    role = Role.CUSTOMER
    password = factory.PostGenerationMethodCall("set_password", "pw-123456!")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class CustomerFactory(UserFactory):
    role = Role.CUSTOMER
    profile = factory.RelatedFactory(
        "accounts.tests.factories.CustomerProfileFactory", factory_related_name="user"
    )


class CustomerProfileFactory(DjangoModelFactory):
    class Meta:
        model = CustomerProfile

    user = factory.SubFactory(UserFactory)
    openid = factory.Sequence(lambda n: f"openid-{n}")
    nickname = factory.Sequence(lambda n: f"客户{n}")


class AgentFactory(UserFactory):
    role = Role.AGENT
    is_staff = True


class SupervisorFactory(UserFactory):
    role = Role.SUPERVISOR
    is_staff = True
