"""The WSDL the Workday sandbox serves for Human_Resources: the Get_Workers operation and the types it answers with.

A subset of Workday's own WSDL (same namespace, element names, qualified `wd:type` attributes and document/literal
binding), so a SOAP client such as zeep builds the same requests against the sandbox as against a tenant.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

_SCHEMA = """
<xsd:schema targetNamespace="urn:com.workday/bsvc" xmlns:xsd="http://www.w3.org/2001/XMLSchema"
            xmlns:wd="urn:com.workday/bsvc" elementFormDefault="qualified" attributeFormDefault="qualified">
  <xsd:complexType name="IDType">
    <xsd:simpleContent>
      <xsd:extension base="xsd:string"><xsd:attribute name="type" type="xsd:string" use="required"/></xsd:extension>
    </xsd:simpleContent>
  </xsd:complexType>
  <xsd:complexType name="ReferenceType">
    <xsd:sequence><xsd:element name="ID" type="wd:IDType" minOccurs="0" maxOccurs="unbounded"/></xsd:sequence>
    <xsd:attribute name="Descriptor" type="xsd:string"/>
  </xsd:complexType>

  <xsd:complexType name="Transaction_Date_Range_DataType">
    <xsd:sequence>
      <xsd:element name="Updated_From" type="xsd:dateTime" minOccurs="0"/>
      <xsd:element name="Updated_Through" type="xsd:dateTime" minOccurs="0"/>
      <xsd:element name="Effective_From" type="xsd:dateTime" minOccurs="0"/>
      <xsd:element name="Effective_Through" type="xsd:dateTime" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Transaction_Log_CriteriaType">
    <xsd:sequence>
      <xsd:element name="Transaction_Date_Range_Data" type="wd:Transaction_Date_Range_DataType" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Worker_Request_CriteriaType">
    <xsd:sequence>
      <xsd:element name="Transaction_Log_Criteria_Data" type="wd:Transaction_Log_CriteriaType" minOccurs="0"
                   maxOccurs="unbounded"/>
      <xsd:element name="Exclude_Inactive_Workers" type="xsd:boolean" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Response_FilterType">
    <xsd:sequence>
      <xsd:element name="As_Of_Effective_Date" type="xsd:date" minOccurs="0"/>
      <xsd:element name="As_Of_Entry_DateTime" type="xsd:dateTime" minOccurs="0"/>
      <xsd:element name="Page" type="xsd:decimal" minOccurs="0"/>
      <xsd:element name="Count" type="xsd:decimal" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Worker_Response_GroupType">
    <xsd:sequence>
      <xsd:element name="Include_Reference" type="xsd:boolean" minOccurs="0"/>
      <xsd:element name="Include_Personal_Information" type="xsd:boolean" minOccurs="0"/>
      <xsd:element name="Include_Employment_Information" type="xsd:boolean" minOccurs="0"/>
      <xsd:element name="Include_Compensation" type="xsd:boolean" minOccurs="0"/>
      <xsd:element name="Include_Organizations" type="xsd:boolean" minOccurs="0"/>
      <xsd:element name="Include_Transaction_Log_Data" type="xsd:boolean" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Response_ResultsType">
    <xsd:sequence>
      <xsd:element name="Total_Results" type="xsd:decimal" minOccurs="0"/>
      <xsd:element name="Total_Pages" type="xsd:decimal" minOccurs="0"/>
      <xsd:element name="Page_Results" type="xsd:decimal" minOccurs="0"/>
      <xsd:element name="Page" type="xsd:decimal" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>

  <xsd:complexType name="Name_Detail_DataType">
    <xsd:sequence>
      <xsd:element name="Country_Reference" type="wd:ReferenceType" minOccurs="0"/>
      <xsd:element name="First_Name" type="xsd:string" minOccurs="0"/>
      <xsd:element name="Last_Name" type="xsd:string" minOccurs="0"/>
    </xsd:sequence>
    <xsd:attribute name="Formatted_Name" type="xsd:string"/>
    <xsd:attribute name="Reporting_Name" type="xsd:string"/>
  </xsd:complexType>
  <xsd:complexType name="Legal_Name_DataType">
    <xsd:sequence><xsd:element name="Name_Detail_Data" type="wd:Name_Detail_DataType"/></xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Name_DataType">
    <xsd:sequence><xsd:element name="Legal_Name_Data" type="wd:Legal_Name_DataType" minOccurs="0"/></xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Type_DataType">
    <xsd:sequence><xsd:element name="Type_Reference" type="wd:ReferenceType"/></xsd:sequence>
    <xsd:attribute name="Primary" type="xsd:boolean"/>
  </xsd:complexType>
  <xsd:complexType name="Usage_DataType">
    <xsd:sequence><xsd:element name="Type_Data" type="wd:Type_DataType" maxOccurs="unbounded"/></xsd:sequence>
    <xsd:attribute name="Public" type="xsd:boolean"/>
  </xsd:complexType>
  <xsd:complexType name="Email_Address_DataType">
    <xsd:sequence>
      <xsd:element name="Email_Address" type="xsd:string"/>
      <xsd:element name="Usage_Data" type="wd:Usage_DataType" maxOccurs="unbounded"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Contact_DataType">
    <xsd:sequence>
      <xsd:element name="Email_Address_Data" type="wd:Email_Address_DataType" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Personal_DataType">
    <xsd:sequence>
      <xsd:element name="Name_Data" type="wd:Name_DataType" minOccurs="0"/>
      <xsd:element name="Contact_Data" type="wd:Contact_DataType" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>

  <xsd:complexType name="Business_Site_Summary_DataType">
    <xsd:sequence>
      <xsd:element name="Location_Reference" type="wd:ReferenceType" minOccurs="0"/>
      <xsd:element name="Name" type="xsd:string" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Position_DataType">
    <xsd:sequence>
      <xsd:element name="Position_ID" type="xsd:string" minOccurs="0"/>
      <xsd:element name="Position_Title" type="xsd:string" minOccurs="0"/>
      <xsd:element name="Business_Title" type="xsd:string" minOccurs="0"/>
      <xsd:element name="Worker_Type_Reference" type="wd:ReferenceType" minOccurs="0"/>
      <xsd:element name="Business_Site_Summary_Data" type="wd:Business_Site_Summary_DataType" minOccurs="0"/>
      <xsd:element name="Manager_as_of_last_detected_manager_change_Reference" type="wd:ReferenceType"
                   minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:attribute name="Effective_Date" type="xsd:date"/>
  </xsd:complexType>
  <xsd:complexType name="Worker_Job_DataType">
    <xsd:sequence><xsd:element name="Position_Data" type="wd:Position_DataType"/></xsd:sequence>
    <xsd:attribute name="Primary_Job" type="xsd:boolean"/>
  </xsd:complexType>
  <xsd:complexType name="Worker_Status_DataType">
    <xsd:sequence>
      <xsd:element name="Active" type="xsd:boolean" minOccurs="0"/>
      <xsd:element name="Hire_Date" type="xsd:date" minOccurs="0"/>
      <xsd:element name="Terminated" type="xsd:boolean" minOccurs="0"/>
      <xsd:element name="Termination_Date" type="xsd:date" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Employment_DataType">
    <xsd:sequence>
      <xsd:element name="Worker_Job_Data" type="wd:Worker_Job_DataType" minOccurs="0" maxOccurs="unbounded"/>
      <xsd:element name="Worker_Status_Data" type="wd:Worker_Status_DataType" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Employee_Base_Pay_Plan_Assignment_DataType">
    <xsd:sequence>
      <xsd:element name="Compensation_Plan_Reference" type="wd:ReferenceType" minOccurs="0"/>
      <xsd:element name="Amount" type="xsd:decimal" minOccurs="0"/>
      <xsd:element name="Currency_Reference" type="wd:ReferenceType" minOccurs="0"/>
      <xsd:element name="Frequency_Reference" type="wd:ReferenceType" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Compensation_DataType">
    <xsd:sequence>
      <xsd:element name="Employee_Base_Pay_Plan_Assignment_Data" type="wd:Employee_Base_Pay_Plan_Assignment_DataType"
                   minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Organization_SummaryType">
    <xsd:sequence>
      <xsd:element name="Organization_Reference_ID" type="xsd:string" minOccurs="0"/>
      <xsd:element name="Organization_Name" type="xsd:string" minOccurs="0"/>
      <xsd:element name="Organization_Type_Reference" type="wd:ReferenceType" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Worker_Organization_DataType">
    <xsd:sequence><xsd:element name="Organization_Data" type="wd:Organization_SummaryType"/></xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Worker_Organization_ListType">
    <xsd:sequence>
      <xsd:element name="Worker_Organization_Data" type="wd:Worker_Organization_DataType" minOccurs="0"
                   maxOccurs="unbounded"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Transaction_Log_DataType">
    <xsd:sequence>
      <xsd:element name="Transaction_Log_Description" type="xsd:string" minOccurs="0"/>
      <xsd:element name="Transaction_Effective_Moment" type="xsd:dateTime" minOccurs="0"/>
      <xsd:element name="Transaction_Entry_Moment" type="xsd:dateTime" minOccurs="0"/>
      <xsd:element name="Transaction_Log_Type_Reference" type="wd:ReferenceType" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Transaction_Log_EntryType">
    <xsd:sequence>
      <xsd:element name="Transaction_Log_Reference" type="wd:ReferenceType" minOccurs="0"/>
      <xsd:element name="Transaction_Log_Data" type="wd:Transaction_Log_DataType" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Transaction_Log_Entry_DataType">
    <xsd:sequence>
      <xsd:element name="Transaction_Log_Entry" type="wd:Transaction_Log_EntryType" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Worker_DataType">
    <xsd:sequence>
      <xsd:element name="Worker_ID" type="xsd:string" minOccurs="0"/>
      <xsd:element name="User_ID" type="xsd:string" minOccurs="0"/>
      <xsd:element name="Personal_Data" type="wd:Personal_DataType" minOccurs="0"/>
      <xsd:element name="Employment_Data" type="wd:Employment_DataType" minOccurs="0"/>
      <xsd:element name="Compensation_Data" type="wd:Compensation_DataType" minOccurs="0"/>
      <xsd:element name="Organization_Data" type="wd:Worker_Organization_ListType" minOccurs="0"/>
      <xsd:element name="Transaction_Log_Entry_Data" type="wd:Transaction_Log_Entry_DataType" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="WorkerType">
    <xsd:sequence>
      <xsd:element name="Worker_Reference" type="wd:ReferenceType" minOccurs="0"/>
      <xsd:element name="Worker_Descriptor" type="xsd:string" minOccurs="0"/>
      <xsd:element name="Worker_Data" type="wd:Worker_DataType" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Workers_Response_DataType">
    <xsd:sequence><xsd:element name="Worker" type="wd:WorkerType" minOccurs="0" maxOccurs="unbounded"/></xsd:sequence>
  </xsd:complexType>

  <xsd:element name="Get_Workers_Request">
    <xsd:complexType>
      <xsd:sequence>
        <xsd:element name="Request_Criteria" type="wd:Worker_Request_CriteriaType" minOccurs="0"/>
        <xsd:element name="Response_Filter" type="wd:Response_FilterType" minOccurs="0"/>
        <xsd:element name="Response_Group" type="wd:Worker_Response_GroupType" minOccurs="0"/>
      </xsd:sequence>
      <xsd:attribute name="version" type="xsd:string"/>
    </xsd:complexType>
  </xsd:element>
  <xsd:element name="Get_Workers_Response">
    <xsd:complexType>
      <xsd:sequence>
        <xsd:element name="Response_Filter" type="wd:Response_FilterType" minOccurs="0"/>
        <xsd:element name="Response_Results" type="wd:Response_ResultsType" minOccurs="0"/>
        <xsd:element name="Response_Data" type="wd:Workers_Response_DataType" minOccurs="0"/>
      </xsd:sequence>
      <xsd:attribute name="version" type="xsd:string"/>
    </xsd:complexType>
  </xsd:element>
  <xsd:element name="Validation_Fault">
    <xsd:complexType>
      <xsd:sequence>
        <xsd:element name="Validation_Error" minOccurs="0" maxOccurs="unbounded">
          <xsd:complexType>
            <xsd:sequence>
              <xsd:element name="Message" type="xsd:string" minOccurs="0"/>
              <xsd:element name="Detail_Message" type="xsd:string" minOccurs="0"/>
              <xsd:element name="Xpath" type="xsd:string" minOccurs="0"/>
            </xsd:sequence>
          </xsd:complexType>
        </xsd:element>
      </xsd:sequence>
    </xsd:complexType>
  </xsd:element>
</xsd:schema>
"""


def human_resources_wsdl(location: str) -> str:
    """The Human_Resources WSDL whose service address is `location` (the endpoint that served it)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="Human_Resources" targetNamespace="urn:com.workday/bsvc"
    xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:wd="urn:com.workday/bsvc">
  <wsdl:types>{_SCHEMA}</wsdl:types>
  <wsdl:message name="Get_Workers_RequestInput"><wsdl:part name="body" element="wd:Get_Workers_Request"/></wsdl:message>
  <wsdl:message name="Get_Workers_ResponseOutput"><wsdl:part name="body" element="wd:Get_Workers_Response"/></wsdl:message>
  <wsdl:message name="Validation_FaultMsg"><wsdl:part name="body" element="wd:Validation_Fault"/></wsdl:message>
  <wsdl:portType name="Human_ResourcesPort">
    <wsdl:operation name="Get_Workers">
      <wsdl:input message="wd:Get_Workers_RequestInput"/>
      <wsdl:output message="wd:Get_Workers_ResponseOutput"/>
      <wsdl:fault name="Validation_Fault" message="wd:Validation_FaultMsg"/>
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="Human_ResourcesBinding" type="wd:Human_ResourcesPort">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="Get_Workers">
      <soap:operation soapAction=""/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
      <wsdl:fault name="Validation_Fault"><soap:fault name="Validation_Fault" use="literal"/></wsdl:fault>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="Human_ResourcesService">
    <wsdl:port name="Human_Resources" binding="wd:Human_ResourcesBinding">
      <soap:address location={quoteattr(location)}/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""
